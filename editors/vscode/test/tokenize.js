// Tokenize .grow files with the extension's TextMate grammar through the engine VS Code
// uses (vscode-textmate + vscode-oniguruma) and print every token as JSON lines:
//   {"file": ..., "line": 1, "text": "model", "scopes": ["source.grow", "keyword.other.declaration.grow"]}
// tests/test_editors.py runs this over every shipped spec and checks the scopes.
// Usage: node test/tokenize.js FILE.grow ...
const fs = require("fs");
const path = require("path");
const vsctm = require("vscode-textmate");
const oniguruma = require("vscode-oniguruma");

const wasm = fs.readFileSync(require.resolve("vscode-oniguruma/release/onig.wasm")).buffer;
const onigLib = oniguruma.loadWASM(wasm).then(() => ({
  createOnigScanner: (patterns) => new oniguruma.OnigScanner(patterns),
  createOnigString: (s) => new oniguruma.OnigString(s),
}));

const registry = new vsctm.Registry({
  onigLib,
  loadGrammar: async (scopeName) => {
    if (scopeName !== "source.grow") return null;
    const file = path.join(__dirname, "..", "syntaxes", "grow.tmLanguage.json");
    return vsctm.parseRawGrammar(fs.readFileSync(file, "utf8"), file);
  },
});

async function main() {
  const grammar = await registry.loadGrammar("source.grow");
  const out = [];
  for (const file of process.argv.slice(2)) {
    let state = vsctm.INITIAL;
    fs.readFileSync(file, "utf8").split("\n").forEach((line, i) => {
      const result = grammar.tokenizeLine(line, state);
      for (const t of result.tokens) {
        const text = line.substring(t.startIndex, t.endIndex);
        if (text.trim()) out.push(JSON.stringify({ file, line: i + 1, col: t.startIndex + 1, text, scopes: t.scopes }));
      }
      state = result.ruleStack;
    });
  }
  process.stdout.write(out.join("\n") + "\n");
}

main().catch((e) => { console.error(e); process.exit(1); });
