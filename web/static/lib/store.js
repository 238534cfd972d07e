// A value shared by components (the session, preferences): read it with
// use(), change it with set(); every component using it redraws.
import { useEffect, useState } from 'preact/hooks';

export function shared(initial) {
  let value = initial;
  const subscribers = new Set();
  return {
    get: () => value,
    set(next) {
      value = next;
      for (const fn of subscribers) fn(value);
    },
    use() {
      const [v, setV] = useState(value);
      useEffect(() => {
        subscribers.add(setV);
        setV(value);
        return () => subscribers.delete(setV);
      }, []);
      return v;
    },
  };
}
