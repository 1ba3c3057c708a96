"""The program language as a grammar, for decoders that can be constrained (xgrammar in the transformers
backend, vLLM's structured outputs): every answer then parses, in the canonical spelling of
`Program.render()` (the spelling the refiners are trained on), with an optional leading space (the one a
SentencePiece model writes after `[/INST]`). Strings hold no raw NUL (Python's parser refuses one; the
escape is fine) and no lone surrogate (`\\ud800`-`\\udfff`), which no UTF-8 text can hold."""

from __future__ import annotations

DOC_PROGRAMS = ("keep_doc()", "drop_doc()")

CHUNK_GRAMMAR = r"""
root ::= " "? call ("\n" call)*
call ::= "keep_chunk()" | remove | normalize
remove ::= "remove_lines(line_start=" number ", line_end=" number ")"
normalize ::= "normalize(source_str=" string ", target_str=" string ")"
number ::= [0-9] | [1-9] [0-9]+
string ::= "\"" (plain | escaped)* "\""
plain ::= [^"\\\n\r\x00]
escaped ::= "\\" (["\\nrt] | "x" hex hex | "u" (not_d hex hex hex | "d" [0-7] hex hex))
not_d ::= [0-9a-ce-f]
hex ::= [0-9a-f]
"""

DOC_GRAMMAR = r"""
root ::= " "? ("keep_doc()" | "drop_doc()")
"""
