// Forms: labelled fields, the API as the one validator (forms are
// novalidate; what the API says about a field is shown next to it), and
// edits that send only what changed.

import {h, setText, toast} from './dom.js';
import {ApiError, RawJSON, jsonText} from './api.js';
import {again} from './live.js';

let seq = 0;

// field kinds: text (default), email, url, password, select, json, textarea.
// A field: {name, label, type, required, nullable, hint, placeholder,
// maxlength, options: [[value, label]…] or a promise of them, list (a
// datalist id), create (only when creating), edit (only when editing),
// autocomplete}.
//
// buildForm({fields, values, mode: 'create'|'edit', submit, onSubmit})
// returns the form element; onSubmit(body) is awaited and its ApiError is
// shown on the form. form.update(values) takes newer stored values.
export function buildForm({fields, values = {}, mode = 'create', submit, onSubmit, cls = ''}) {
  const id = 'form' + (++seq);
  const inputs = new Map();
  const errors = new Map();
  const hints = new Map();
  const touched = new Set(); // fields the user changed since the form was built or saved
  const visible = fields.filter(f => f && !(mode === 'create' && f.edit) && !(mode === 'edit' && f.create));
  const formError = h('div', {class: 'form-error', role: 'alert', hidden: true});
  const button = h('button', {type: 'submit', class: 'btn btn-primary', text: submit || (mode === 'create' ? 'Create' : 'Save changes')});
  const form = h('form', {class: 'form ' + cls, novalidate: true});

  for (const f of visible) {
    const fid = `${id}-${f.name}`;
    const hint = f.hint ? h('p', {class: 'hint', id: fid + '-hint', text: f.hint}) : null;
    const err = h('p', {class: 'field-error', id: fid + '-error', hidden: true});
    let input;
    if (f.type === 'select') {
      input = h('select', {id: fid, name: f.name});
      const fill = opts => {
        for (const [v, label] of opts) input.append(h('option', {value: v, text: label}));
        input.value = initial(f, values);
      };
      // Options read from the API (a parent's names) are read again
      // until they come, as the list beside the form is (live.js' again):
      // read once, during a database outage or while gatewayd restarted,
      // the select stayed empty for good, and nothing could be created
      // there without a reload (found by an audit, helper 4). A form no
      // longer in the page (navigated away from) asks no more.
      if (typeof f.options === 'function') {
        let tries = 0;
        again(async () => {
          if (tries++ && !form.isConnected) return;
          fill(await f.options());
        });
      }
      else fill(f.options || []);
    } else if (f.type === 'json' || f.type === 'textarea') {
      input = h('textarea', {id: fid, name: f.name, rows: f.type === 'json' ? 3 : 2, spellcheck: 'false'});
      input.value = initial(f, values);
    } else {
      input = h('input', {id: fid, name: f.name, type: f.type || 'text', maxlength: f.maxlength, placeholder: f.placeholder,
        list: f.list, autocomplete: f.autocomplete || (f.type === 'password' ? 'new-password' : 'off'), spellcheck: 'false'});
      input.value = initial(f, values);
    }
    if (f.required && mode === 'create') input.setAttribute('aria-required', 'true');
    input.setAttribute('aria-describedby', [hint && hint.id, err.id].filter(Boolean).join(' '));
    input.addEventListener('input', () => touched.add(f.name));
    inputs.set(f.name, input);
    errors.set(f.name, err);
    if (hint) hints.set(f.name, hint);
    const label = h('label', {for: fid}, f.label, f.required && mode === 'create' ? h('span', {class: 'req', 'aria-hidden': 'true', text: ' *'}) : null);
    form.append(h('div', {class: 'field' + (f.wide ? ' field-wide' : ''), dataset: {field: f.name}}, label, input, hint, err));
  }
  form.append(formError, h('div', {class: 'actions'}, button));

  const clearErrors = () => {
    for (const [name, err] of errors) {
      err.hidden = true;
      err.textContent = '';
      inputs.get(name).removeAttribute('aria-invalid');
    }
    formError.hidden = true;
    formError.replaceChildren();
  };

  // show puts each detail next to its field; the rest, and the message,
  // above the button.
  const show = (e) => {
    const rest = [];
    let firstBad = null;
    for (const d of e.details || []) {
      const err = errors.get(d.field);
      if (err) {
        err.textContent = (err.textContent ? err.textContent + '; ' : '') + d.message;
        err.hidden = false;
        const input = inputs.get(d.field);
        input.setAttribute('aria-invalid', 'true');
        firstBad = firstBad || input;
      } else rest.push(d);
    }
    if (!firstBad || rest.length) {
      formError.append(h('p', {text: e.message + (e.code && e.status ? ` (${e.code})` : '')}));
      if (rest.length) formError.append(h('ul', null, rest.map(d => h('li', {text: `${d.field}: ${d.message}`}))));
      formError.hidden = false;
    }
    (firstBad || button).focus();
  };

  form.addEventListener('submit', async ev => {
    ev.preventDefault();
    clearErrors();
    const {body, problems} = collect(visible, inputs, values, mode);
    if (problems.length) {
      show({message: 'Please correct the fields marked below', details: problems});
      return;
    }
    if (mode === 'edit' && Object.keys(body).length === 0) {
      show({message: 'Nothing has changed', details: []});
      return;
    }
    button.disabled = true;
    form.setAttribute('aria-busy', 'true');
    try {
      await onSubmit(body);
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      show(e);
      if (e.status === 403) toast('Your token’s role does not allow this', 'error');
    } finally {
      button.disabled = false;
      form.removeAttribute('aria-busy');
    }
  });
  form.inputs = inputs;

  // update shows newer stored values (a live event's re-read, or the
  // answer to this form's own save: saved) in place. Rebuilding the form
  // on every event lost what was being typed, the API's errors next to
  // the fields and the focus (found by an audit, helper 7). A field the
  // user changed keeps what they typed until a save takes it; the others
  // show the new value; edits are measured against the new values from
  // then on. Given fields (the same names) bring new hints and options.
  form.update = (next, {saved = false, fields: nextFields} = {}) => {
    for (const f of visible) {
      const input = inputs.get(f.name);
      const nf = nextFields?.find(x => x && x.name === f.name);
      if (nf?.hint && hints.has(f.name)) setText(hints.get(f.name), nf.hint);
      const keep = !saved && touched.has(f.name);
      if (f.type === 'select' && Array.isArray(nf?.options)) {
        const chosen = input.value;
        input.replaceChildren(...nf.options.map(([v, label]) => h('option', {value: v, text: label})));
        input.value = keep ? chosen : initial(f, next);
      } else if (!keep) {
        const v = initial(f, next);
        if (input.value !== v) input.value = v;
      }
    }
    if (saved) touched.clear();
    values = next;
  };
  return form;
}

function initial(f, values) {
  const v = values[f.name];
  if (v === undefined || v === null) return f.default ?? '';
  if (f.type === 'json') return jsonText(v, 1);
  return String(v);
}

// collect builds the body: on create every field given; on edit only the
// fields that differ from values (an emptied nullable field is null).
function collect(fields, inputs, values, mode) {
  const body = {};
  const problems = [];
  for (const f of fields) {
    const raw = inputs.get(f.name).value;
    let v = f.type === 'json' || f.type === 'password' ? raw : raw.trim();
    if (f.type === 'json') {
      // Sent as typed (RawJSON): the API keeps every digit, and refuses
      // what it would not store (a duplicate key) with its own words.
      if (v.trim() === '') {
        if (mode === 'edit' && values[f.name] && Object.keys(values[f.name]).length) body[f.name] = {};
        continue;
      }
      if (mode === 'edit' && v === initial(f, values)) continue;
      try {
        JSON.parse(v);
      } catch {
        problems.push({field: f.name, message: 'is not valid JSON'});
        continue;
      }
      body[f.name] = new RawJSON(v);
      continue;
    }
    if (mode === 'create') {
      if (v !== '') body[f.name] = v;
      continue;
    }
    if (f.type === 'password') {
      if (v !== '') body[f.name] = v;
      continue;
    }
    const before = values[f.name] === null || values[f.name] === undefined ? '' : String(values[f.name]);
    if (v === before) continue;
    body[f.name] = v === '' && f.nullable ? null : v;
  }
  return {body, problems};
}

// confirmButton is a two-step button: the first press asks, the second does.
// question may be a function, asked each time: a name can change on screen.
export function confirmButton(label, question, action) {
  const box = h('div', {class: 'confirm'});
  const start = h('button', {type: 'button', class: 'btn btn-danger', text: label});
  const ask = () => {
    const yes = h('button', {type: 'button', class: 'btn btn-danger', text: 'Yes, ' + label.toLowerCase()});
    const no = h('button', {type: 'button', class: 'btn', text: 'Cancel'});
    const q = h('p', {class: 'confirm-q', text: typeof question === 'function' ? question() : question});
    box.replaceChildren(q, yes, no);
    no.addEventListener('click', () => {
      box.replaceChildren(start);
      start.focus();
    });
    yes.addEventListener('click', async () => {
      yes.disabled = true;
      try {
        await action();
      } catch (e) {
        toast(e instanceof ApiError ? e.text() : String(e), 'error');
        box.replaceChildren(start);
      }
    });
    no.focus();
  };
  start.addEventListener('click', ask);
  box.append(start);
  return box;
}

// act runs an action button's request, disabling it meanwhile, and says
// what happened.
export async function act(button, fn, ok) {
  button.disabled = true;
  try {
    const r = await fn();
    if (ok) toast(typeof ok === 'function' ? ok(r) : ok);
    return r;
  } catch (e) {
    toast(e instanceof ApiError ? e.text() : String(e), 'error');
    return undefined;
  } finally {
    button.disabled = 'retired' in button.dataset;
  }
}

// retire disables buttons for good: what they act on was deleted. An act
// still in flight leaves them disabled when it ends (it turned "Take a
// reading" back on after the sensor's gateway was deleted).
export function retire(...buttons) {
  for (const b of buttons) {
    b.dataset.retired = '';
    b.disabled = true;
  }
}
