//! Every limit the host puts on pricing modules, with its reason.
//!
//! A pricing module is partner code running inside the gateway, on the
//! request path of every customer. These limits make the worst it can do
//! "fail its own call, quickly": it can never take the gateway down, starve
//! other customers for long, or see another customer's data.

use std::time::Duration;

/// How often the epoch ticker advances the engine's epoch.
///
/// 5 ms: the deadline's granularity. A finer tick costs a thread wake-up
/// each time (200 per second at 5 ms is nothing; 10,000 at 100 µs is not).
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Epoch ticks a module may run per call before it is interrupted (so a
/// call is stopped between 45 and 50 ms after it starts).
///
/// A well-behaved price call takes microseconds (a 50-line order well under
/// a millisecond), so 50 ms is over a hundred times what any honest module
/// needs, yet short enough that a looping module costs its caller one slow
/// answer, not a hung request. Calls run on the request's own worker
/// thread, so this is also the longest a misbehaving module can hold a
/// worker. The deadline is wall-clock (epochs are cheap; fuel metering
/// would slow every guest instruction): on a machine so overloaded that a
/// thread waits 50 ms for a core, a good call could be cut off too, and
/// fails like any other module failure (closed).
pub const DEADLINE_TICKS: u64 = 10;

/// Largest linear memory a module instance may have: 32 MiB.
///
/// The reference module's initial memory is under 0.5 MiB (a 128 KiB
/// stack, a 256 KiB allocation arena, its static data); configurations and
/// orders are kilobytes. 32 MiB leaves ample room while bounding the
/// memory of all live instances to
/// `POOL_INSTANCES × 32 MiB`. Growing beyond it fails (`memory.grow`
/// returns -1), which Rust guests turn into an abort: the call fails and
/// is counted as `memory`.
pub const MAX_MEMORY_BYTES: usize = 32 << 20;

/// Memory an instance slot keeps resident between calls: 2 MiB.
///
/// After each call the slot's memory is reset to the module's initial
/// image. By default that is an `madvise` (a system call, a TLB shootdown
/// on every core running the process, then a page fault for every page the
/// next call touches), which costs tens of microseconds per call. With
/// Linux's `PAGEMAP_SCAN` (kernel 6.7+, used when available), only the
/// pages the call dirtied are found and copied back from the image, up to
/// this many bytes; a price call dirties a few dozen KiB, so calls stay off
/// the kernel. At most `POOL_INSTANCES × 2 MiB` stays resident.
pub const KEEP_RESIDENT_BYTES: usize = 2 << 20;

/// Largest table (function references) a module may grow to. Rust guests
/// use a few hundred entries; 20,000 is wasmtime's own pooling default.
pub const MAX_TABLE_ELEMENTS: usize = 20_000;

/// Instances that can be alive at once (the pooling allocator's slots).
///
/// Calls run synchronously on the thread that makes them, one instance per
/// thread at a time, so live instances never exceed the threads calling
/// (the gateway's workers, one per core, plus tests and the bench). 64
/// leaves room for 64 concurrent callers; each slot reserves virtual
/// address space only (wasmtime's guard regions), and memory is committed
/// on use. When every slot is busy the call fails as `unavailable`
/// (retryable) rather than waiting.
pub const POOL_INSTANCES: u32 = 64;

/// Core wasm instances one component instance may use. A `no_std` Rust
/// module is one; a `std` one (`wasm32-wasip2`) has its main module plus a
/// few small shim modules that wit-component generates for its WASI
/// imports (three in all).
pub const CORE_INSTANCES_PER_COMPONENT: u32 = 8;

/// Linear memories one component instance may have (the main module's;
/// one spare for components built with an adapter module).
pub const MEMORIES_PER_COMPONENT: u32 = 2;

/// Tables one component instance may have (the main module's plus the
/// shims' indirect-call tables).
pub const TABLES_PER_COMPONENT: u32 = 4;

/// Largest module file accepted: 16 MiB. The reference module is about
/// 250 KiB in release; a module of many megabytes is a mistake (a debug
/// build with embedded debug info) and slow to compile.
pub const MAX_MODULE_BYTES: usize = 16 << 20;

/// Largest configuration text passed to a module: 1 MiB. Policies are a
/// few kilobytes; the text is copied into the guest once per load
/// (`describe`, `prepare`).
pub const MAX_CONFIG_BYTES: usize = 1 << 20;

/// Largest prepared configuration (what `prepare` returns): 1 MiB, like
/// the configuration text it is made from. It is copied into the guest at
/// every call, so a module should keep it compact (the reference module's
/// is a few hundred bytes).
pub const MAX_PREPARED_BYTES: usize = 1 << 20;

/// Most bundle lines a module may return. Bundles are a handful of
/// partner products per order; hundreds would be a bug and would bloat the
/// answer the customer receives.
pub const MAX_BUNDLE_LINES: usize = 100;

/// Longest identifier a module may return (line and bundle ids, rule
/// names, module name and version): 128 bytes. They appear in answers,
/// logs and headers.
pub const MAX_NAME_BYTES: usize = 128;

/// Longest free text a module may return (bundle descriptions, denial and
/// error messages): 512 bytes, one line.
pub const MAX_TEXT_BYTES: usize = 512;

/// Most decimal places an amount may have: 10 (Alibaba prices unit rates
/// with up to 10 decimals; more is noise or garbage).
pub const MAX_SCALE: u32 = 10;

/// Memory one module's quote cache may hold: 2 MiB of orders and answers.
///
/// A one-line price query and its answer weigh about 1 KiB, so this keeps
/// the last couple of thousand distinct orders: a busy console's working
/// set (customers re-quote the same few configurations while deciding).
/// It bounds memory at `2 MiB × modules loaded`. The cache is exact (see
/// `pricing::quote_cache`), so its size changes speed, never answers.
pub const QUOTE_CACHE_BYTES: u64 = 2 << 20;
