//! The UPDATE packer: desired routes in, the fewest UPDATE messages out.
