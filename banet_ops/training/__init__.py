"""Training BA-Net: samples from cube + labels, augmentation, loss, the training loop and evaluation."""
