"""The `.grow` language server (`growdsl lsp`): pygls over stdio, torch-free, every answer
from the compiler. `analysis` runs the compiler on a buffer, `hover` and `complete` answer
from its results and the language's tables, `server` speaks the protocol."""
