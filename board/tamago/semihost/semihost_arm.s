//go:build tamago && arm

#include "textflag.h"

// func call(op uint32, arg unsafe.Pointer) int32
TEXT ·call(SB),NOSPLIT,$0-12
	MOVW	op+0(FP), R0
	MOVW	arg+4(FP), R1
	WORD	$0xef123456	// svc 0x123456: AArch32 A32 semihosting trap
	MOVW	R0, ret+8(FP)
	RET

// func callValue(op uint32, arg uint32) int32
TEXT ·callValue(SB),NOSPLIT,$0-12
	MOVW	op+0(FP), R0
	MOVW	arg+4(FP), R1
	WORD	$0xef123456	// svc 0x123456
	MOVW	R0, ret+8(FP)
	RET
