"""Models: detector, tracker, phase model, diagnosis models, datasets, training and evaluation."""
