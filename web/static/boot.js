// Runs before the first paint (a classic, blocking script): sets the theme,
// the one chosen in this browser or else the system's, so a dark page never
// flashes light. lib/prefs.js keeps it up to date afterwards.
(function () {
  var theme = 'system';
  try {
    theme = localStorage.getItem('veritrail.theme') || 'system';
  } catch (e) { /* storage refused: the system's theme */ }
  var dark = theme === 'dark' || (theme !== 'light' && matchMedia('(prefers-color-scheme: dark)').matches);
  document.documentElement.dataset.theme = dark ? 'dark' : 'light';
})();
