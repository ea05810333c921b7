// SPDX-License-Identifier: MIT
pragma solidity ^0.8.27;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC3009} from "@openzeppelin/contracts/token/ERC20/extensions/draft-ERC3009.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";

/// @notice The development stand-in for USDC: 6 decimals, EIP-3009 transfers by signed
/// authorization with random 32-byte nonces (what x402 clients sign), and an open faucet.
/// @dev Name, symbol and EIP-712 version are compile-time constants (the EIP-712 ones become
/// immutables in the runtime code), because the local chain copies the runtime code to the
/// real USDC address with anvil_setCode, which copies neither constructor nor storage.
abstract contract DevUSDC is ERC3009 {
    function decimals() public pure override returns (uint8) {
        return 6;
    }

    function symbol() public pure override returns (string memory) {
        return "USDC";
    }

    /// @notice Anyone may mint: this token only ever lives on a local development chain.
    function mint(address to, uint256 value) external {
        _mint(to, value);
    }
}

/// @notice Stands in for Base Sepolia's USDC (EIP-712 name "USDC", version "2").
contract DevUSDCBaseSepolia is DevUSDC {
    constructor() ERC20("", "") EIP712("USDC", "2") {}

    function name() public pure override returns (string memory) {
        return "USDC";
    }
}

/// @notice Stands in for Base mainnet's USDC (EIP-712 name "USD Coin", version "2"), for tests
/// that prove the two networks never mix.
contract DevUSDCBase is DevUSDC {
    constructor() ERC20("", "") EIP712("USD Coin", "2") {}

    function name() public pure override returns (string memory) {
        return "USD Coin";
    }
}
