//! Gives back to the system the heap pages that start-up used and freed.
//!
//! Building the pipeline (parsing the configuration, compiling its regexps, TLS set-up) allocates far more
//! than the running pipeline keeps; glibc holds the freed pages in its arenas, so an idle agent would
//! carry that peak in its RSS for its whole life. One trim once the pipeline runs returns them.

/// Release free heap pages to the system (glibc's `malloc_trim`); a no-op elsewhere.
pub fn release_free_pages() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists; it takes no pointer from us.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Trim once, shortly after a pipeline started (its inputs have opened their files and sockets by then).
pub fn trim_after_start() -> tokio::task::JoinHandle<()> {
    tokio::spawn(async {
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        release_free_pages();
    })
}
