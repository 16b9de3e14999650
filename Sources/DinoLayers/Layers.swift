// Placeholder; replaced by the layer implementations.
