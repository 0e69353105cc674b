//! The organization sync.
