# SPDX-License-Identifier: MIT
# Turns the file IN into a C source OUT defining `const unsigned char SYM[]` and
# `const size_t SYM_len` (the array also ends with a NUL that the length leaves out).
file(READ ${IN} hex HEX)
string(LENGTH "${hex}" n)
math(EXPR len "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n" bytes "${bytes}")
file(WRITE ${OUT} "/* generated from ${IN}: do not edit */\n#include <stddef.h>\n"
     "const unsigned char ${SYM}[] = {\n${bytes}0x00};\nconst size_t ${SYM}_len = ${len};\n")
