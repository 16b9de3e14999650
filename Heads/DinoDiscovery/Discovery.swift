// Placeholder; replaced by LOST / TokenCut.
