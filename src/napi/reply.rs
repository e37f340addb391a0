//! The one place a [`StoreError`] becomes a JavaScript `Error`: its `code`,
//! its message, the `engine` that raised it and whether it is `retryable`
//! (decided in Rust, by [`StoreError::retryable`]).

use napi::bindgen_prelude::{ToNapiValue, TypeName, Unknown};
use napi::{sys, Env};

use crate::error::StoreError;

/// A `StoreError` and the engine it came from.
pub struct Fault {
    pub error: StoreError,
    pub engine: &'static str,
}

/// Builds the JS `Error` of a fault: `message`, `code`, `engine`,
/// `retryable`.
///
/// # Safety
/// `env` must be the env of the current call on the JS thread.
unsafe fn js_error(env: sys::napi_env, fault: &Fault) -> napi::Result<sys::napi_value> {
    let code = unsafe { String::to_napi_value(env, fault.error.code().to_string())? };
    let message = unsafe { String::to_napi_value(env, fault.error.to_string())? };
    let engine = unsafe { String::to_napi_value(env, fault.engine.to_string())? };
    let retryable = unsafe { bool::to_napi_value(env, fault.error.retryable())? };
    let mut error = std::ptr::null_mut();
    unsafe {
        napi::check_status!(sys::napi_create_error(env, code, message, &mut error))?;
        napi::check_status!(sys::napi_set_named_property(
            env,
            error,
            c"code".as_ptr(),
            code
        ))?;
        napi::check_status!(sys::napi_set_named_property(
            env,
            error,
            c"engine".as_ptr(),
            engine
        ))?;
        napi::check_status!(sys::napi_set_named_property(
            env,
            error,
            c"retryable".as_ptr(),
            retryable
        ))?;
    }
    Ok(error)
}

/// The error of a synchronous method: napi throws the JS `Error` built by
/// [`js_error`] (an error that references a JS value is thrown as that
/// value).
pub fn throw(env: &Env, fault: Fault) -> napi::Error {
    match unsafe { js_error(env.raw(), &fault) } {
        Ok(value) => napi::Error::from(unsafe { Unknown::from_raw_unchecked(env.raw(), value) }),
        Err(e) => e,
    }
}

/// A synchronous method's result.
pub fn sync<T>(env: &Env, engine: &'static str, r: Result<T, StoreError>) -> napi::Result<T> {
    r.map_err(|error| throw(env, Fault { error, engine }))
}

/// An async method's result. napi's async bridge only rejects with its own
/// `Status` codes, so the error is turned into a JS `Error` here, on the JS
/// thread, and handed back as the rejection value.
pub struct Reply<T>(Result<T, Fault>);

impl<T> Reply<T> {
    pub fn new(engine: &'static str, r: Result<T, StoreError>) -> Self {
        Reply(r.map_err(|error| Fault { error, engine }))
    }
}

impl<T: TypeName> TypeName for Reply<T> {
    fn type_name() -> &'static str {
        T::type_name()
    }
    fn value_type() -> napi::ValueType {
        T::value_type()
    }
}

impl<T: ToNapiValue> ToNapiValue for Reply<T> {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> napi::Result<sys::napi_value> {
        match val.0 {
            Ok(v) => unsafe { T::to_napi_value(env, v) },
            Err(fault) => {
                let error = unsafe { js_error(env, &fault)? };
                // Rejecting with an error that references a JS value makes
                // napi reject with that very value.
                Err(napi::Error::from(unsafe {
                    Unknown::from_raw_unchecked(env, error)
                }))
            }
        }
    }
}
