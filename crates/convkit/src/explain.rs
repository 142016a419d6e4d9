//! Placeholder for issue 5 (explain); being written.
