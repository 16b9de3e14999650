// Placeholder; replaced by the segmentation head.
