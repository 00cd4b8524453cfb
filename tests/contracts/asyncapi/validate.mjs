import { Parser, fromFile } from '@asyncapi/parser';
const parser = new Parser();
const { document, diagnostics } = await fromFile(parser, process.argv[2]).parse();
const out = diagnostics.map(d => ({ severity: d.severity, code: d.code, message: d.message, path: d.path.join('.') }));
console.log(JSON.stringify({ parsed: document !== undefined, diagnostics: out }));
