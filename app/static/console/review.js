// Keyboard shortcuts for the review page; without this file every action is a plain form.
// 1-9 pick a suggestion, Enter accepts the first, "/" moves to the category search,
// "s" skips, "u" undoes.
"use strict";
document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const target = event.target;
  if (target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement) return;
  if (event.key === "/") {
    const search = document.getElementById("category");
    if (search) {
      event.preventDefault();
      search.focus();
    }
    return;
  }
  // Enter on a focused button or link keeps its own meaning.
  if (event.key === "Enter" && target instanceof Element && target.closest("button, a, summary")) return;
  const key = event.key === "Enter" ? "1" : event.key;
  const button = document.querySelector(`button[data-key="${CSS.escape(key)}"]`);
  if (button) {
    event.preventDefault();
    button.click();
  }
});
// Tells a test (or a curious person) that the keys are live on this page.
document.documentElement.dataset.keys = "on";
