#include "dino_sha256.h"
