"""The program language as a grammar, for decoders that can be constrained (xgrammar in the transformers
backend, vLLM's structured outputs): every answer then parses, in the canonical spelling of
`Program.render()` (the spelling the refiners are trained on), with an optional leading space (the one a
SentencePiece model writes after `[/INST]`)."""

from __future__ import annotations

DOC_PROGRAMS = ("keep_doc()", "drop_doc()")

CHUNK_GRAMMAR = r"""
root ::= " "? call ("\n" call)*
call ::= "keep_chunk()" | remove | normalize
remove ::= "remove_lines(line_start=" number ", line_end=" number ")"
normalize ::= "normalize(source_str=" string ", target_str=" string ")"
number ::= [0-9] | [1-9] [0-9]+
string ::= "\"" (plain | escaped)* "\""
plain ::= [^"\\\n\r]
escaped ::= "\\" (["\\nrt] | "x" hex hex | "u" hex hex hex hex)
hex ::= [0-9a-f]
"""

DOC_GRAMMAR = r"""
root ::= " "? ("keep_doc()" | "drop_doc()")
"""
