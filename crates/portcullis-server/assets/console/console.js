// The console's own script: niceties only. Every page works without it (forms post).
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  // Copy buttons: <button data-copy="element-id">.
  document.addEventListener("click", function (ev) {
    var btn = ev.target.closest("[data-copy]");
    if (!btn) return;
    var source = document.getElementById(btn.getAttribute("data-copy"));
    if (!source || !navigator.clipboard) return;
    navigator.clipboard.writeText(source.value || source.textContent.trim()).then(function () {
      btn.textContent = "Copied";
    });
  });

  // Confirm before destructive posts: <form data-confirm="question">.
  document.addEventListener("submit", function (ev) {
    var q = ev.target.getAttribute && ev.target.getAttribute("data-confirm");
    if (q && !window.confirm(q)) ev.preventDefault();
  });

  // Selects that act on change (the org switcher); their submit button hides with .js.
  document.addEventListener("change", function (ev) {
    if (ev.target.matches && ev.target.matches("select[data-autosubmit]")) ev.target.form.submit();
  });

  // Live filter of a table: <input data-filter="table-id">.
  document.addEventListener("input", function (ev) {
    var id = ev.target.getAttribute && ev.target.getAttribute("data-filter");
    if (!id) return;
    var needle = ev.target.value.toLowerCase();
    document.querySelectorAll("#" + id + " tbody tr").forEach(function (tr) {
      tr.hidden = needle !== "" && tr.textContent.toLowerCase().indexOf(needle) < 0;
    });
  });

  // Invitation links carry their token in the fragment (never sent to a server): put it
  // in the accept form, and keep it for this tab across the sign-in detour.
  var field = document.querySelector("input[data-invitation-token]");
  if (field) {
    var m = /(?:^|[#&])token=([^&]+)/.exec(window.location.hash);
    if (m) {
      var token = decodeURIComponent(m[1]);
      try { sessionStorage.setItem("portcullis.invitation", token); } catch (e) {}
      history.replaceState(null, "", window.location.pathname);
    }
    var kept = null;
    try { kept = sessionStorage.getItem("portcullis.invitation"); } catch (e) {}
    if (!field.value && kept) field.value = kept;
  }
  if (document.querySelector("[data-invitation-done]")) {
    try { sessionStorage.removeItem("portcullis.invitation"); } catch (e) {}
  }
})();
