// Placeholder; replaced by the depth heads.
