#include "textflag.h"

// func prefetch(p unsafe.Pointer)
TEXT ·prefetch(SB), NOSPLIT|NOFRAME, $0-8
	MOVQ p+0(FP), AX
	PREFETCHT0 (AX)
	RET

// func prefetchSlots(base unsafe.Pointer, size uintptr, slots uint64)
TEXT ·prefetchSlots(SB), NOSPLIT|NOFRAME, $0-24
	MOVQ base+0(FP), AX
	MOVQ size+8(FP), BX
	MOVQ slots+16(FP), CX
loop:
	TESTQ CX, CX
	JZ done
	BSFQ CX, DX
	IMULQ BX, DX
	PREFETCHT0 (AX)(DX*1)
	LEAQ -1(CX), R8
	ANDQ R8, CX
	JMP loop
done:
	RET
