"""The retraining pipeline (one plain function per step of the banet_retrain DAG)."""
