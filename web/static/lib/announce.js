// announce speaks a short message through a live region (new rows loaded,
// a check finished) without moving focus.
let region;

export function announce(message) {
  if (!region) {
    region = document.createElement('div');
    region.className = 'visually-hidden';
    region.setAttribute('role', 'status');
    region.setAttribute('aria-live', 'polite');
    document.body.append(region);
  }
  region.textContent = '';
  // A new text node after a tick is read even when the text repeats.
  setTimeout(() => { region.textContent = message; }, 50);
}
