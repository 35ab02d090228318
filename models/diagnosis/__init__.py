"""Static-image diagnosis: readers (incl. DICOM) with de-identification, classifiers, segmenters,
their training and evaluation, the surgical-still analysis and explanation heatmaps."""
