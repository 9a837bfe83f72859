/**
 * A small non-validating XML parser, enough for Pascal VOC annotation files: elements, attributes, text,
 * comments, CDATA, processing instructions and doctype are handled; namespaces are kept as written.
 */
import { argError } from './errors.js';

export interface XmlElement {
  name: string;
  attributes: Record<string, string>;
  children: XmlElement[];
  /** Concatenated character data directly inside this element (entities decoded, not trimmed). */
  text: string;
}

const NAMED: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function decodeEntities(s: string): string {
  if (!s.includes('&')) return s;
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-zA-Z]+);/g, (m, e: string) => {
    if (e[0] === '#') {
      const code =
        e[1] === 'x' || e[1] === 'X' ? Number.parseInt(e.slice(2), 16) : Number.parseInt(e.slice(1), 10);
      return Number.isFinite(code) ? String.fromCodePoint(code) : m;
    }
    return NAMED[e] ?? m;
  });
}

/** Parses an XML document and returns its root element. */
export function parseXml(text: string): XmlElement {
  const fn = 'parseXml';
  if (typeof text !== 'string') throw argError(fn, 'text', 'XML text', text);
  let i = 0;
  const n = text.length;
  const root: XmlElement = { name: '#document', attributes: {}, children: [], text: '' };
  const stack: XmlElement[] = [root];
  const fail = (what: string): never => {
    const line = text.slice(0, i).split('\n').length;
    throw argError(fn, 'text', `well-formed XML (${what} at line ${line})`, text);
  };
  while (i < n) {
    const lt = text.indexOf('<', i);
    const top = stack[stack.length - 1];
    if (lt < 0) {
      top.text += decodeEntities(text.slice(i));
      break;
    }
    if (lt > i) top.text += decodeEntities(text.slice(i, lt));
    i = lt;
    if (text.startsWith('<!--', i)) {
      const end = text.indexOf('-->', i + 4);
      if (end < 0) fail('unterminated comment');
      i = end + 3;
    } else if (text.startsWith('<![CDATA[', i)) {
      const end = text.indexOf(']]>', i + 9);
      if (end < 0) fail('unterminated CDATA');
      top.text += text.slice(i + 9, end);
      i = end + 3;
    } else if (text.startsWith('<?', i)) {
      const end = text.indexOf('?>', i + 2);
      if (end < 0) fail('unterminated processing instruction');
      i = end + 2;
    } else if (text.startsWith('<!', i)) {
      // doctype (an internal subset in brackets is skipped as a whole)
      let depth = 0;
      let j = i + 2;
      for (; j < n; j++) {
        const c = text[j];
        if (c === '[') depth++;
        else if (c === ']') depth--;
        else if (c === '>' && depth <= 0) break;
      }
      if (j >= n) fail('unterminated declaration');
      i = j + 1;
    } else if (text[i + 1] === '/') {
      const end = text.indexOf('>', i);
      if (end < 0) fail('unterminated end tag');
      const name = text.slice(i + 2, end).trim();
      const open = stack.pop();
      if (!open || open === root || open.name !== name) fail(`mismatched end tag </${name}>`);
      i = end + 1;
    } else {
      const m = /^<([^\s/>]+)/.exec(text.slice(i, i + 256));
      if (!m) fail('malformed tag');
      const el: XmlElement = { name: m![1], attributes: {}, children: [], text: '' };
      let j = i + m![0].length;
      const attrRe = /\s*([^\s=/>]+)\s*=\s*("([^"]*)"|'([^']*)')/y;
      for (;;) {
        while (j < n && /\s/.test(text[j])) j++;
        if (text[j] === '>' || text.startsWith('/>', j)) break;
        attrRe.lastIndex = j;
        const a = attrRe.exec(text);
        if (!a) fail(`malformed attribute in <${el.name}>`);
        el.attributes[a![1]] = decodeEntities(a![3] ?? a![4] ?? '');
        j = attrRe.lastIndex;
      }
      top.children.push(el);
      if (text.startsWith('/>', j)) {
        i = j + 2;
      } else {
        i = j + 1;
        stack.push(el);
      }
    }
  }
  if (stack.length !== 1) fail(`unclosed <${stack[stack.length - 1].name}>`);
  const elems = root.children;
  if (elems.length !== 1) fail(elems.length === 0 ? 'no root element' : 'more than one root element');
  return elems[0];
}

/** The first child element named `name`, or undefined. */
export function xmlChild(el: XmlElement, name: string): XmlElement | undefined {
  return el.children.find((c) => c.name === name);
}

/** All child elements named `name`. */
export function xmlChildren(el: XmlElement, name: string): XmlElement[] {
  return el.children.filter((c) => c.name === name);
}

/** The trimmed text of the first child named `name`, or undefined. */
export function xmlChildText(el: XmlElement, name: string): string | undefined {
  const c = xmlChild(el, name);
  return c ? c.text.trim() : undefined;
}
