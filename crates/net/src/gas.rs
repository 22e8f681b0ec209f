//! Intrinsic gas: what a transaction costs before its first opcode runs (Prague rules).
//!
//! A transaction whose gas limit is below this can never execute, so the lane refuses it without
//! looking at any state. The rules, each from the EIP that set it:
//!
//! | component | gas | source |
//! |---|---|---|
//! | every transaction | 21 000 | yellow paper `G_transaction` |
//! | contract creation (`to` empty) | + 32 000 | `G_txcreate` (EIP-2) |
//! | each zero calldata byte | + 4 | `G_txdatazero` |
//! | each non-zero calldata byte | + 16 | EIP-2028 |
//! | each 32-byte word of initcode (creation only) | + 2 | EIP-3860 |
//! | each access-list address | + 2 400 | EIP-2930 |
//! | each access-list storage key | + 1 900 | EIP-2930 |
//! | each EIP-7702 authorization | + 25 000 | EIP-7702 `PER_EMPTY_ACCOUNT_COST` |
//!
//! EIP-7623 adds a floor: with `tokens = zero_bytes + 4 * nonzero_bytes`, the gas limit must also
//! cover `21 000 + 10 * tokens`. [`required_gas`] is the larger of the two when the floor is on.
//! All arithmetic saturates: a saturated result is above every accepted gas limit anyway.

/// Base cost of every transaction.
pub const TX_BASE_GAS: u64 = 21_000;
/// Extra cost of a contract creation.
pub const TX_CREATE_GAS: u64 = 32_000;
/// Cost of a zero calldata byte.
pub const CALLDATA_ZERO_BYTE_GAS: u64 = 4;
/// Cost of a non-zero calldata byte (EIP-2028).
pub const CALLDATA_NONZERO_BYTE_GAS: u64 = 16;
/// Cost per 32-byte word of initcode (EIP-3860).
pub const INITCODE_WORD_GAS: u64 = 2;
/// Cost of an access-list address (EIP-2930).
pub const ACCESS_LIST_ADDRESS_GAS: u64 = 2_400;
/// Cost of an access-list storage key (EIP-2930).
pub const ACCESS_LIST_STORAGE_KEY_GAS: u64 = 1_900;
/// Cost of an EIP-7702 authorization (`PER_EMPTY_ACCOUNT_COST`).
pub const AUTHORIZATION_GAS: u64 = 25_000;
/// Floor cost per calldata token (EIP-7623 `TOTAL_COST_FLOOR_PER_TOKEN`).
pub const CALLDATA_FLOOR_TOKEN_GAS: u64 = 10;
/// Tokens per non-zero calldata byte (EIP-7623); a zero byte is one token.
const NONZERO_BYTE_TOKENS: u64 = 4;

/// What intrinsic gas depends on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GasInputs<'a> {
    /// Calldata (initcode for a creation).
    pub input: &'a [u8],
    /// Whether `to` is empty (contract creation).
    pub is_create: bool,
    /// Addresses in the access list.
    pub access_list_addresses: u64,
    /// Storage keys in the access list, over all addresses.
    pub access_list_storage_keys: u64,
    /// EIP-7702 authorizations.
    pub authorizations: u64,
}

fn count_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// Zero and non-zero byte counts of `input`.
fn byte_counts(input: &[u8]) -> (u64, u64) {
    let nonzero = count_u64(input.iter().filter(|b| **b != 0).count());
    (count_u64(input.len()).saturating_sub(nonzero), nonzero)
}

/// Intrinsic gas without the EIP-7623 floor.
#[must_use]
pub fn intrinsic_gas(inputs: &GasInputs<'_>) -> u64 {
    let (zero, nonzero) = byte_counts(inputs.input);
    let mut gas = TX_BASE_GAS
        .saturating_add(zero.saturating_mul(CALLDATA_ZERO_BYTE_GAS))
        .saturating_add(nonzero.saturating_mul(CALLDATA_NONZERO_BYTE_GAS))
        .saturating_add(inputs.access_list_addresses.saturating_mul(ACCESS_LIST_ADDRESS_GAS))
        .saturating_add(inputs.access_list_storage_keys.saturating_mul(ACCESS_LIST_STORAGE_KEY_GAS))
        .saturating_add(inputs.authorizations.saturating_mul(AUTHORIZATION_GAS));
    if inputs.is_create {
        let words = count_u64(inputs.input.len()).div_ceil(32);
        gas = gas
            .saturating_add(TX_CREATE_GAS)
            .saturating_add(words.saturating_mul(INITCODE_WORD_GAS));
    }
    gas
}

/// The EIP-7623 calldata floor: `21 000 + 10 * (zero_bytes + 4 * nonzero_bytes)`.
#[must_use]
pub fn calldata_floor_gas(input: &[u8]) -> u64 {
    let (zero, nonzero) = byte_counts(input);
    let tokens = zero.saturating_add(nonzero.saturating_mul(NONZERO_BYTE_TOKENS));
    TX_BASE_GAS.saturating_add(tokens.saturating_mul(CALLDATA_FLOOR_TOKEN_GAS))
}

/// The least gas limit the transaction may carry: the intrinsic gas, raised to the EIP-7623
/// floor when `calldata_floor` is on.
#[must_use]
pub fn required_gas(inputs: &GasInputs<'_>, calldata_floor: bool) -> u64 {
    let intrinsic = intrinsic_gas(inputs);
    if calldata_floor { intrinsic.max(calldata_floor_gas(inputs.input)) } else { intrinsic }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_transfer_costs_the_base() {
        assert_eq!(intrinsic_gas(&GasInputs::default()), 21_000);
        assert_eq!(required_gas(&GasInputs::default(), true), 21_000);
    }

    #[test]
    fn calldata_costs_four_per_zero_and_sixteen_per_nonzero_byte() {
        let input = [0u8, 0, 1, 2, 0];
        let inputs = GasInputs { input: &input, ..GasInputs::default() };
        assert_eq!(intrinsic_gas(&inputs), 21_000 + 3 * 4 + 2 * 16);
        // Floor: tokens = 3 + 4 * 2 = 11 -> 21 110, above the intrinsic 21 044.
        assert_eq!(calldata_floor_gas(&input), 21_110);
        assert_eq!(required_gas(&inputs, true), 21_110);
        assert_eq!(required_gas(&inputs, false), 21_044);
    }

    #[test]
    fn creation_adds_create_cost_and_initcode_words() {
        let input = [1u8; 33]; // two words
        let inputs = GasInputs { input: &input, is_create: true, ..GasInputs::default() };
        assert_eq!(intrinsic_gas(&inputs), 21_000 + 32_000 + 33 * 16 + 2 * 2);
    }

    #[test]
    fn access_list_and_authorizations_are_charged() {
        let inputs = GasInputs {
            access_list_addresses: 2,
            access_list_storage_keys: 3,
            authorizations: 1,
            ..GasInputs::default()
        };
        assert_eq!(intrinsic_gas(&inputs), 21_000 + 2 * 2_400 + 3 * 1_900 + 25_000);
    }

    #[test]
    fn huge_counts_saturate_instead_of_wrapping() {
        let inputs = GasInputs {
            access_list_storage_keys: u64::MAX / 2,
            authorizations: u64::MAX,
            ..GasInputs::default()
        };
        assert_eq!(intrinsic_gas(&inputs), u64::MAX);
    }
}
