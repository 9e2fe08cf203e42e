// Tokenises every example with the TextMate grammar (vscode-textmate + vscode-oniguruma, as
// VS Code does) and checks what each kind of token is scoped as. Run:
//   cd editors/vscode && npm install --no-save vscode-textmate@9 vscode-oniguruma@2 && node test/tokenize.js
const fs = require("fs");
const path = require("path");
const vsctm = require("vscode-textmate");
const oniguruma = require("vscode-oniguruma");

const wasm = fs.readFileSync(require.resolve("vscode-oniguruma/release/onig.wasm")).buffer;
const onig = oniguruma.loadWASM(wasm).then(() => ({
  createOnigScanner: (p) => new oniguruma.OnigScanner(p),
  createOnigString: (s) => new oniguruma.OnigString(s),
}));
const registry = new vsctm.Registry({
  onigLib: onig,
  loadGrammar: async () =>
    vsctm.parseRawGrammar(fs.readFileSync(path.join(__dirname, "../syntaxes/seq.tmLanguage.json"), "utf8"), "seq.tmLanguage.json"),
});

function scopeOf(tokens, line, text) {
  const at = line.indexOf(text);
  if (at < 0) return null;
  const t = tokens.find((t) => t.startIndex <= at && at < t.endIndex);
  return t ? t.scopes[t.scopes.length - 1] : null;
}

registry.loadGrammar("source.seq").then((grammar) => {
  const dir = path.join(__dirname, "../../../examples");
  let checked = 0;
  const fail = (msg) => {
    console.error(msg);
    process.exitCode = 1;
  };
  for (const f of fs.readdirSync(dir).filter((f) => f.endsWith(".seq"))) {
    let state = vsctm.INITIAL;
    for (const line of fs.readFileSync(path.join(dir, f), "utf8").split("\n")) {
      const r = grammar.tokenizeLine(line, state);
      state = r.ruleStack;
      const expect = (text, scope) => {
        const s = scopeOf(r.tokens, line, text);
        if (s !== scope) fail(`${f}: \`${text}\` in \`${line}\` is ${s}, expected ${scope}`);
        checked++;
      };
      if (/^\s*\/\/\//.test(line)) expect("///", "comment.line.documentation.seq");
      else if (/^\s*\/\//.test(line)) expect("//", "comment.line.double-slash.seq");
      const m = line.match(/^model ([A-Za-z_]\w*)/);
      if (m) {
        expect("model", "keyword.declaration.model.seq");
        expect(m[1], "entity.name.type.model.seq");
      }
      if (!/^\s*\/\//.test(line)) {
        for (const layer of ["LSTM(", "GRU(", "Dense(", "Conv1D("]) if (line.includes(layer)) expect(layer.slice(0, -1), "entity.name.function.layer.seq");
        if (line.includes("->")) expect("->", "keyword.operator.arrow.seq");
        if (line.includes("return_sequences=")) expect("return_sequences", "variable.parameter.keyword.seq");
      }
    }
  }
  if (checked < 50) fail(`only ${checked} checks`);
  console.log(`${checked} token scopes checked`);
});
