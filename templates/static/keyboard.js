// Keyboard use on every page (issue 16). Ctrl+Enter (or ⌘+Enter) in a form's field saves that
// form, so a visit can be typed and saved without the mouse (Tab between fields; Enter in a
// one-line field saves too, as every form does).
//
// The search box on every page: suggestions as she is typed — part of a name (two
// characters or more), or a whole ID number or 居民健康卡 number (numbers are matched whole only,
// as the server does). Arrow keys move through the suggestions, Enter opens one (or, with none
// chosen, the full results page), Escape closes them. Without JavaScript the box is a plain form.
document.addEventListener('keydown', function (e) {
  if (e.key !== 'Enter' || !(e.ctrlKey || e.metaKey)) return;
  var form = e.target.form;
  if (!form || form.method.toLowerCase() !== 'post') return;
  e.preventDefault();
  if (form.requestSubmit) form.requestSubmit(); else form.submit();
});

(function () {
  'use strict';
  var input = document.getElementById('quick-find');
  var list = document.getElementById('quick-find-results');
  if (!input || !list) return;
  var timer = null, asked = '', active = -1;

  function options() { return list.querySelectorAll('[role=option]'); }
  function close() { list.hidden = true; list.textContent = ''; active = -1; input.setAttribute('aria-expanded', 'false'); }
  function note(text) {
    list.textContent = '';
    var li = document.createElement('li');
    li.className = 'note';
    li.textContent = text;
    list.appendChild(li);
    list.hidden = false;
  }
  function mark(i) {
    var all = options();
    if (!all.length) return;
    active = (i + all.length) % all.length;
    for (var k = 0; k < all.length; k++) all[k].setAttribute('aria-selected', k === active ? 'true' : 'false');
    input.setAttribute('aria-activedescendant', all[active].id);
  }
  function show(q, persons) {
    if (q !== input.value.trim()) return; // a newer keystroke is on its way
    list.textContent = '';
    active = -1;
    if (!persons.length) {
      // A number is matched whole: none yet may only mean it is not all typed.
      var partial = /^[0-9]{1,17}$/.test(q);
      note(partial ? '请输入完整的身份证号或健康卡号' : '本辖区未找到匹配的服务对象');
      return;
    }
    persons.forEach(function (p, i) {
      var li = document.createElement('li');
      li.setAttribute('role', 'option');
      li.id = 'quick-find-' + i;
      var a = document.createElement('a');
      a.href = '/persons/' + encodeURIComponent(p.id);
      a.textContent = p.name + ' · ' + p.sex + ' · ' + p.age + '岁' + (p.id_number_masked ? ' · ' + p.id_number_masked : '');
      li.appendChild(a);
      list.appendChild(li);
    });
    list.hidden = false;
    input.setAttribute('aria-expanded', 'true');
  }
  function ask() {
    var q = input.value.trim();
    if (q === asked) return;
    asked = q;
    var number = /^[0-9A-Za-z]+$/.test(q) && /[0-9]/.test(q);
    if (!q || (!number && q.length < 2)) { close(); return; }
    if (number && q.length < 6) { note('请输入完整的身份证号或健康卡号'); return; }
    fetch('/api/persons?limit=8&q=' + encodeURIComponent(q), { credentials: 'same-origin', headers: { Accept: 'application/json' } })
      .then(function (r) { return r.json().then(function (body) { return { ok: r.ok, body: body }; }); })
      .then(function (r) {
        if (q !== input.value.trim()) return;
        if (r.ok) show(q, r.body.persons || []);
        else if (number && q.length < 18) note('请输入完整的身份证号或健康卡号');
        else note(r.body.error || '查找失败');
      })
      .catch(function () { note('暂时无法查找，请按回车键查看结果'); });
  }
  input.setAttribute('role', 'combobox');
  input.setAttribute('aria-expanded', 'false');
  input.setAttribute('aria-autocomplete', 'list');
  input.setAttribute('aria-controls', 'quick-find-results');
  input.addEventListener('input', function () { clearTimeout(timer); timer = setTimeout(ask, 150); });
  input.addEventListener('keydown', function (e) {
    if (e.key === 'ArrowDown') { e.preventDefault(); mark(active + 1); }
    else if (e.key === 'ArrowUp') { e.preventDefault(); mark(active - 1); }
    else if (e.key === 'Escape') { close(); }
    else if (e.key === 'Enter' && active >= 0) {
      e.preventDefault();
      window.location.href = options()[active].querySelector('a').href;
    }
  });
  input.addEventListener('blur', function () { setTimeout(close, 200); });
  // "/" from anywhere on the page (outside a field) puts the cursor in the search box.
  document.addEventListener('keydown', function (e) {
    var t = e.target.tagName;
    if (e.key === '/' && t !== 'INPUT' && t !== 'TEXTAREA' && t !== 'SELECT' && !e.ctrlKey && !e.metaKey && !e.altKey) {
      e.preventDefault();
      input.focus();
    }
  });
})();
