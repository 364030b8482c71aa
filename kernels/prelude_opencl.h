// Prelude for OpenCL C: maps the kernel dialect used in kernels/*.cl onto OpenCL built-ins.
#define KERNEL __kernel
#define GLOBAL __global
#define LOCAL_ARRAY(type, name, n) __local type name[n]
#define LOCAL_PTR __local
#define GLOBAL_ID_X get_global_id(0)
#define GLOBAL_ID_Y get_global_id(1)
#define LOCAL_ID_X get_local_id(0)
#define LOCAL_ID_Y get_local_id(1)
#define GROUP_ID_X get_group_id(0)
#define GROUP_ID_Y get_group_id(1)
#define LOCAL_SIZE_X get_local_size(0)
#define SYNC_THREADS barrier(CLK_LOCAL_MEM_FENCE)
#define AS_FLOAT(u) as_float(u)
