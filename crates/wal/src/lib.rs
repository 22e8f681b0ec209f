//! A CRC-framed segment write-ahead log: single-writer sequencer, recovery, scan and cursors.
