// cuda_fp16.h's half type and conversions are part of the emulated runtime.
#pragma once
#include "cuda_runtime.h"
