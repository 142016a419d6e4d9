//! Placeholder for issue 5 (stack); being written.
