// Starts `seqc lsp` for .seq files.
const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const command = vscode.workspace.getConfiguration("seqmodel").get("server.path", "seqc");
  const server = { command, args: ["lsp"] };
  client = new LanguageClient(
    "seqmodel",
    "seqmodel",
    { run: server, debug: server },
    { documentSelector: [{ scheme: "file", language: "seq" }, { scheme: "untitled", language: "seq" }] }
  );
  context.subscriptions.push(client);
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
