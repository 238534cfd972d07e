// lineOf finds the line of a JSON text at which the value named by path
// (the server's way of naming a field: rules[1].action) starts, so an
// error can be shown at its line; 0 when the text has no such value.
export function lineOf(text, path) {
  let line = 1;
  const stack = [];
  const here = () => stack.map((s) => (s.arr ? `[${s.i}]` : `.${s.key}`)).join('').replace(/^\./, '');
  const top = () => stack[stack.length - 1];
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '\n') { line++; continue; }
    if (c === ' ' || c === '\t' || c === '\r') continue;
    const t = top();
    if (c === '"') {
      let j = i + 1;
      let s = '';
      for (; j < text.length && text[j] !== '"'; j++) {
        if (text[j] === '\\') j++;
        s += text[j];
      }
      if (t && !t.arr && t.expectKey) t.key = s;
      else if (here() === path) return line;
      i = j;
      continue;
    }
    if (c === ':') { if (t) t.expectKey = false; continue; }
    if (c === ',') { if (t) { if (t.arr) t.i++; else t.expectKey = true; } continue; }
    if (c === '}' || c === ']') { stack.pop(); continue; }
    if (here() === path && stack.length > 0) return line;
    if (c === '{') stack.push({ arr: false, key: null, expectKey: true });
    else if (c === '[') stack.push({ arr: true, i: 0 });
    else while (i + 1 < text.length && !',}] \n\t\r'.includes(text[i + 1])) i++;
  }
  return 0;
}

// lineOfOffset is the line of a character offset.
export function lineOfOffset(text, offset) {
  return text.slice(0, offset).split('\n').length;
}
