def test_login_and_product_list(staff_client, make_product):
    make_product(sku="ABC-1")
    response = staff_client.get("/admin/product/")
    assert response.status_code == 200
    assert "ABC-1" in response.text
