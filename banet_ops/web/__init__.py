"""The map: OGC API Features/Tiles over the analyst layers, COG tiles, STAC and the map page.

``banet_ops.web.app.create_app`` builds it; ``banet-ops serve`` runs it standalone and the Airflow
plugin mounts it as the "Burned areas" page.  Layers and queries: ``banet_ops.web.layers``.
"""
