// Placeholder; replaced by the dataset-scale inputs.
