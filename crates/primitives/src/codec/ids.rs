//! Layouts of the identifier newtypes and the coded enums.
//!
//! ```text
//! Seq, RaftIndex, Height, Nonce, NodeId, ValidatorId, UnixMillis   u64 LE (8 bytes)
//! TxHash, Digest                                                   32 raw bytes
//! Address                                                          20 raw bytes
//! RejectReason, DropReason, EvictReason, Lane, Subpool,
//! FenceReason, KindCode, TxType                                    u8 stable code
//! ```

use super::{Decode, Encode, Reader};
use crate::{
    Address, DecodeError, Digest, DropReason, EvictReason, FenceReason, Height, KindCode, Lane,
    NodeId, Nonce, RaftIndex, RejectReason, Seq, Subpool, TxHash, TxType, UnixMillis, ValidatorId,
};

macro_rules! u64_id_codec {
    ($($name:ident),+) => {$(
        impl Encode for $name {
            fn encode(&self, out: &mut Vec<u8>) {
                self.0.encode(out);
            }
            fn encoded_len(&self) -> usize {
                8
            }
        }

        impl Decode for $name {
            fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                r.u64().map(Self)
            }
        }
    )+};
}
u64_id_codec!(Seq, RaftIndex, Height, Nonce, NodeId, ValidatorId, UnixMillis);

macro_rules! byte_id_codec {
    ($($name:ident),+) => {$(
        impl Encode for $name {
            fn encode(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.0);
            }
            fn encoded_len(&self) -> usize {
                Self::LEN
            }
        }

        impl Decode for $name {
            fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                r.array().map(Self)
            }
        }
    )+};
}
byte_id_codec!(TxHash, Address, Digest);

macro_rules! coded_enum_codec {
    ($($name:ident),+) => {$(
        impl Encode for $name {
            fn encode(&self, out: &mut Vec<u8>) {
                out.push(self.code());
            }
            fn encoded_len(&self) -> usize {
                1
            }
        }

        impl Decode for $name {
            fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                let offset = r.position();
                let tag = r.u8()?;
                Self::from_code(tag).ok_or(DecodeError::UnknownTag {
                    offset,
                    what: stringify!($name),
                    tag,
                })
            }
        }
    )+};
}
coded_enum_codec!(
    RejectReason,
    DropReason,
    EvictReason,
    Lane,
    Subpool,
    FenceReason,
    KindCode,
    TxType
);

#[cfg(test)]
mod tests {
    use crate::codec::{decode_exact, encode_to_vec};
    use crate::{DecodeError, Height, Lane, TxHash, TxType};

    #[test]
    fn ids_are_fixed_width_little_endian() {
        assert_eq!(encode_to_vec(&Height(0x0102)), [2, 1, 0, 0, 0, 0, 0, 0]);
        let h = TxHash([7; 32]);
        assert_eq!(encode_to_vec(&h), [7; 32]);
        assert_eq!(decode_exact::<TxHash>(&[7; 32]).unwrap(), h);
    }

    #[test]
    fn coded_enums_use_their_stable_code() {
        assert_eq!(encode_to_vec(&Lane::Stream), [3]);
        assert_eq!(decode_exact::<TxType>(&[2]).unwrap(), TxType::DynamicFee);
        assert_eq!(
            decode_exact::<Lane>(&[0]),
            Err(DecodeError::UnknownTag { offset: 0, what: "Lane", tag: 0 })
        );
    }
}
