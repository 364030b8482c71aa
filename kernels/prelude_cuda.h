// Prelude for CUDA (compiled at run time with NVRTC): maps the kernel dialect of kernels/*.cl onto CUDA.
#define KERNEL extern "C" __global__
#define GLOBAL
#define LOCAL_ARRAY(type, name, n) __shared__ type name[n]
#define LOCAL_PTR
#define GLOBAL_ID_X (blockIdx.x * blockDim.x + threadIdx.x)
#define GLOBAL_ID_Y (blockIdx.y * blockDim.y + threadIdx.y)
#define LOCAL_ID_X threadIdx.x
#define LOCAL_ID_Y threadIdx.y
#define GROUP_ID_X blockIdx.x
#define GROUP_ID_Y blockIdx.y
#define LOCAL_SIZE_X blockDim.x
#define SYNC_THREADS __syncthreads()
#define tanh tanhf
#define exp expf
#define sqrt sqrtf
#define fmax fmaxf
#define INFINITY __int_as_float(0x7f800000)
#define log logf
#define AS_FLOAT(u) __uint_as_float(u)
typedef unsigned int uint;
typedef unsigned short ushort;
