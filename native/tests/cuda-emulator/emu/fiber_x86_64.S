# The fiber mode's context switch (emu/runtime.cpp), x86-64 System V.
#
# emu_fiber_switch(void** save_sp, void* to_sp): pushes the callee-saved registers and the SSE and x87 control words
# of the running context (a fiber or the scheduler), stores its stack pointer in *save_sp, and resumes the context
# whose stack pointer is to_sp, saved the same way (or laid out by prepare() for a fiber's first run).
  .text
  .globl emu_fiber_switch
  .type emu_fiber_switch, @function
emu_fiber_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size emu_fiber_switch, .-emu_fiber_switch

# A fiber's first switch returns here, with the function to run in r13 and its argument in r12. The function never
# returns (a finished fiber switches back to the scheduler for good).
  .globl emu_fiber_start
  .type emu_fiber_start, @function
emu_fiber_start:
  movq %r12, %rdi
  callq *%r13
  ud2
  .size emu_fiber_start, .-emu_fiber_start

  .section .note.GNU-stack, "", @progbits
