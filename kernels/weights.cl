// How a kernel reads a weight. Weight matrices (and the token embedding) may stay 16-bit on the device, half
// the bytes to read per token: `format` says how buffer w stores its elements. The branch is the same for
// every work-item of a launch, so it costs a GPU nothing; the widening is exact for every finite value.
#define WEIGHT_F32 0
#define WEIGHT_F16 1
#define WEIGHT_BF16 2

float load_weight(GLOBAL const float* w, int format, int i)
{
    if (format == WEIGHT_F32) return w[i];
    uint h = ((GLOBAL const ushort*)w)[i];
    if (format == WEIGHT_BF16) return AS_FLOAT(h << 16);           // bfloat16 = the top half of a float32
    // float16: sign to bit 31, exponent and mantissa to a float's positions; read as a float that is the
    // value x 2^-112 (subnormals included), so one multiply by 2^112 finishes the conversion.
    return AS_FLOAT(((h & 0x8000u) << 16) | ((h & 0x7fffu) << 13)) * 5.192296858534828e33f;
}
