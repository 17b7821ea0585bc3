//go:build tamago && arm

#include "textflag.h"

// func Read32(addr uint32) uint32
TEXT ·Read32(SB),NOSPLIT,$0-8
	MOVW	addr+0(FP), R0
	MOVW	(R0), R1
	MOVW	R1, ret+4(FP)
	RET

// func Write32(addr uint32, val uint32)
TEXT ·Write32(SB),NOSPLIT,$0-8
	MOVW	addr+0(FP), R0
	MOVW	val+4(FP), R1
	MOVW	R1, (R0)
	RET

// func Barrier()
TEXT ·Barrier(SB),NOSPLIT,$0-0
	WORD	$0xf57ff04f	// dsb sy
	RET
