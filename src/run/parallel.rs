//! Order-keeping parallel map over a slice on scoped threads.

/// Maps `f` over `items` on up to `workers` threads, keeping order; the first error wins.
pub fn parallel_map<T: Sync, R: Send, E: Send>(
    items: &[T],
    workers: usize,
    f: impl Fn(&T) -> Result<R, E> + Sync,
) -> Result<Vec<R>, E> {
    let chunk = items.len().div_ceil(workers.max(1)).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|c| s.spawn(|| c.iter().map(&f).collect::<Result<Vec<R>, E>>()))
            .collect();
        let mut out = Vec::with_capacity(items.len());
        for h in handles {
            match h.join() {
                Ok(part) => out.extend(part?),
                Err(p) => std::panic::resume_unwind(p),
            }
        }
        Ok(out)
    })
}
