//! A read for JavaScript: `{ json, numbers }`, the same from every engine.

use napi::bindgen_prelude::{Float64ArraySlice, ToNapiValue, TypeName};
use napi::{sys, Env};

use crate::store::EventBatch;

/// `numbers` is copied into a plain Float64Array: napi's owned arrays are
/// external buffers with a finalizer each, which cost the garbage collector
/// more than the copy does.
impl ToNapiValue for EventBatch {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> napi::Result<sys::napi_value> {
        let json = unsafe { String::to_napi_value(env, val.json)? };
        let array = Float64ArraySlice::copy_from(&Env::from_raw(env), &val.numbers)?;
        let array = unsafe { Float64ArraySlice::to_napi_value(env, array)? };
        let mut object = std::ptr::null_mut();
        unsafe {
            napi::check_status!(sys::napi_create_object(env, &mut object))?;
            napi::check_status!(sys::napi_set_named_property(
                env,
                object,
                c"json".as_ptr(),
                json
            ))?;
            napi::check_status!(sys::napi_set_named_property(
                env,
                object,
                c"numbers".as_ptr(),
                array
            ))?;
        }
        Ok(object)
    }
}

impl TypeName for EventBatch {
    fn type_name() -> &'static str {
        "EventBatch"
    }
    fn value_type() -> napi::ValueType {
        napi::ValueType::Object
    }
}
