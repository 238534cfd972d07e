// Runs before the first paint (a classic, blocking script): applies the
// theme chosen earlier, so a dark page never flashes light.
(function () {
  try {
    var theme = localStorage.getItem('veritrail.theme');
    if (theme === 'light' || theme === 'dark') document.documentElement.dataset.theme = theme;
  } catch (e) { /* storage refused: the system's theme */ }
})();
