#include "textflag.h"

// func prefetch(p unsafe.Pointer)
TEXT ·prefetch(SB), NOSPLIT|NOFRAME, $0-8
	MOVD p+0(FP), R0
	PRFM (R0), PLDL1KEEP
	RET

// func prefetchSlots(base unsafe.Pointer, size uintptr, slots uint64)
TEXT ·prefetchSlots(SB), NOSPLIT|NOFRAME, $0-24
	MOVD base+0(FP), R0
	MOVD size+8(FP), R1
	MOVD slots+16(FP), R2
loop:
	CBZ R2, done
	RBIT R2, R3
	CLZ R3, R3
	MUL R1, R3, R4
	ADD R0, R4, R4
	PRFM (R4), PLDL1KEEP
	SUB $1, R2, R5
	AND R5, R2, R2
	B loop
done:
	RET
