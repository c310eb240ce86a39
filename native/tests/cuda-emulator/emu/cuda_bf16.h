// cuda_bf16.h's bfloat16 type and conversions are part of the emulated runtime.
#pragma once
#include "cuda_runtime.h"
