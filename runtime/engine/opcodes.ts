/** Instruction codes of compiled processes (see compile.ts) and branch arm kinds. */
export const OP_SEIZE = 1, OP_RELEASE = 2, OP_DELAY = 3, OP_BRANCH = 4, OP_JUMP = 5, OP_ROUTE = 6,
    OP_ASSIGN = 7, OP_WAIT = 8, OP_DISPOSE = 9, OP_END = 10;

export const ARM_PROB = 0, ARM_WHEN = 1, ARM_OTHERWISE = 2;
