// The VS Code client of growdsl's language server: starts `growdsl lsp` (the command is the
// `growdsl.command` setting) over stdio for .grow files. Highlighting comes from the
// TextMate grammar in syntaxes/, which needs no server.
const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const [command, ...args] = vscode.workspace.getConfiguration("growdsl").get("command");
  client = new LanguageClient(
    "growdsl",
    "growdsl language server",
    { command, args },
    { documentSelector: [{ scheme: "file", language: "grow" }, { scheme: "untitled", language: "grow" }] },
  );
  context.subscriptions.push(client);
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
