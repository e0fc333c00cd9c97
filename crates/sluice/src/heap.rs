//! How sluice uses glibc's allocator so that RSS follows what the pipeline holds.
//!
//! * Building the pipeline (parsing the configuration, compiling its regexps, TLS set-up) allocates far
//!   more than the running pipeline keeps; glibc holds the freed pages in its arenas, so an idle agent
//!   would carry that peak in its RSS for its whole life. One trim once the pipeline runs returns them.
//! * Chunks, request bodies and compressed objects are buffers of one to several MiB, made and freed
//!   all the time by different threads. glibc's default raises its mmap threshold each time such a buffer
//!   is freed, after which they come from the arenas and fragment them: under a steady Kinesis load RSS
//!   crept from 56 to 90 MiB while the buffer held 32. A fixed threshold of 1 MiB maps each of them on
//!   its own and unmaps it when freed (docs/BENCHMARKS.md, "Large buffers and glibc").

/// Release free heap pages to the system (glibc's `malloc_trim`); a no-op elsewhere.
pub fn release_free_pages() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists; it takes no pointer from us.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Allocations of at least this size are mapped on their own and unmapped when freed.
const MMAP_THRESHOLD: i32 = 1 << 20;

/// Fix glibc's mmap threshold (see the module docs), unless `MALLOC_MMAP_THRESHOLD_` tunes it already.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
        // SAFETY: mallopt only sets an allocator parameter; called once at start, before other threads.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        }
    }
}

/// Trim once, shortly after a pipeline started (its inputs have opened their files and sockets by then).
pub fn trim_after_start() -> tokio::task::JoinHandle<()> {
    tokio::spawn(async {
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        release_free_pages();
    })
}
